from django.contrib import admin
from django.urls import path

from tessera.api.v1 import api
from tessera.portal import views as portal

urlpatterns = [
    path("", portal.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
