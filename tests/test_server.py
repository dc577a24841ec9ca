"""The Streamlit server as configured by the project: what it accepts from the network."""

import urllib.error
import urllib.request
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

from app_driver import start_server

from page.display import MAX_UPLOAD_MB

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_the_configuration_keeps_the_protections_on():
    server = CONFIG["server"]
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert server["maxUploadSize"] == MAX_UPLOAD_MB  # the page checks the same limit again


@pytest.mark.slow
def test_an_upload_without_the_xsrf_token_is_refused(trained_store, tmp_path):
    """A cross-site form post carries no XSRF token: the server must answer 403 before reading the file."""
    server = start_server(trained_store.directory, tmp_path / "server.log")
    try:
        body = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"train.csv\"\r\n\r\nlabel\r\n--x--\r\n"
        request = urllib.request.Request(f"{server.url}/_stcore/upload_file/some-session/some-file", data=body,
                                         method="PUT", headers={"Content-Type": "multipart/form-data; boundary=x"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 403
        assert b"XSRF" in refused.value.read()
    finally:
        server.stop()
