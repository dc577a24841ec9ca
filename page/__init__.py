"""The page's own code, beside ``app.py``.

Without Streamlit (usable and tested on their own): what it shows (:mod:`page.display`) and how it runs
trainings (:mod:`page.jobs`). With Streamlit, the parts of the page ``app.py`` assembles: what every
session shares and who this user is (:mod:`page.resources`), the sidebar's training panel
(:mod:`page.training_panel`). The library it builds on, ``mnist_core``, knows nothing of the page.
"""
