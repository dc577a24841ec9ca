"""The page's own code, beside ``app.py``: what it shows (:mod:`page.display`) and how it runs trainings
(:mod:`page.jobs`). Nothing here imports Streamlit either; ``app.py`` lays it out. The library it builds on,
``mnist_core``, knows nothing of the page.
"""
