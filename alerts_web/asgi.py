"""ASGI entry point: HTTP through Django, WebSockets through Channels (session auth)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alerts_web.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from alerts_web.ops.history import start_sampler  # noqa: E402
from alerts_web.worklist.routing import websocket_urlpatterns  # noqa: E402
from readmit_core.settings import get_settings  # noqa: E402

# The app serves its own static files (no CDN, no separate web server in the demo).
http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.STATIC_URL else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# The ops page's last-hour plots (alerts_web/ops/history.py): one sampler per web process.
start_sampler(get_settings())
