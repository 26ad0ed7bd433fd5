"""Templates are compiled once per process: a page never looks at the template files again."""

from __future__ import annotations

from litestar import Litestar

from web.front import template_config


def test_a_page_does_not_stat_its_template_files() -> None:
    app = Litestar(route_handlers=[], template_config=template_config())
    engine = app.template_engine
    assert engine is not None
    assert engine.engine.auto_reload is False
