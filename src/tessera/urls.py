from django.contrib import admin
from django.urls import include, path

from tessera.api.v1 import api
from tessera.core import health, metrics

urlpatterns = [
    # Operations, outside the API (and its OpenAPI document). These exact paths are
    # exempt from the HTTPS redirect: probes and scrapers speak plain HTTP to the process.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("tessera.portal.urls")),
]
