"""The API's OpenAPI description: how API keys authenticate, and the Swagger UI page."""

from __future__ import annotations

from typing import Any

from django.middleware.csrf import get_token
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "alerts_web.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>` (or `Bearer <key>`); each key carries scopes.",
        }


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI under the site's Content-Security-Policy (``script-src 'self'``).

    drf-spectacular's page runs its set-up as an inline script (and styles inline), which
    the policy refuses. This page loads the vendored Swagger UI and a static init script
    (``alerts_web/static/alerts_web/swagger-init.js``) that reads its configuration from a
    JSON data block, which CSP does not treat as script.
    """

    template_name = "api/swagger_ui.html"

    @extend_schema(exclude=True)  # the page is not an API endpoint (as in drf-spectacular)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        settings = spectacular_settings.SWAGGER_UI_SETTINGS
        response.data["swagger_config"] = {
            "schemaUrl": self._get_schema_url(request),
            "settings": settings if isinstance(settings, dict) else {},
            "schemaAuthNames": self._get_schema_auth_names(),
            "csrfHeaderName": self._get_csrf_header_name(),
            "csrfToken": get_token(request),
        }
        return response
