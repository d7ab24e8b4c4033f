"""The web view the service serves itself: the crew's route on a phone and on paper, and an
overview of bins, weather, trees and alerts (docs/web.md). No build step: HTML shells from
``app/web/templates`` and plain CSS and JavaScript modules from ``app/static``."""
from __future__ import annotations

from app.web.assets import mount_static, static_url
from app.web.pages import router

__all__ = ["mount_static", "router", "static_url"]
