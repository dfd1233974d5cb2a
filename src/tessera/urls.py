from django.contrib import admin
from django.urls import include, path

from tessera.api.v1 import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("", include("tessera.portal.urls")),
]
