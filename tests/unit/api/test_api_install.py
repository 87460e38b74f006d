"""The submission API mounted on a faust app, as the worker mounts it (no broker needed)."""

from __future__ import annotations

from clearing.topics import Topics


def test_install_mounts_the_api_on_a_faust_app(tmp_path) -> None:
    import faust

    from clearing.api import ApiConfig, install

    app = faust.App("api-install-test", broker="kafka://127.0.0.1:1", web_port=6066)
    config = ApiConfig("127.0.0.1:1", Topics("t"), f"sqlite:///{tmp_path / 'l.sqlite'}")
    install(app, config)
    prefixes = [r.canonical for r in app.web.web_app.router.resources()]
    assert "/v1" in prefixes
    assert install(app, config) is None  # already there: the hook may run twice
    quiet = faust.App("api-install-off", broker="kafka://127.0.0.1:1", web_enabled=False)
    assert install(quiet, config) is None
