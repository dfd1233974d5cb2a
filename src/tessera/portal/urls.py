"""The portal's addresses. Emails link to these: keep them stable."""

from __future__ import annotations

from django.urls import include, path

from tessera.portal.views import account, earn, member, profile, shop

urlpatterns = [
    path("signin", account.signin, name="signin"),
    path("signin/link", account.signin_link, name="signin_link"),
    path("signout", account.signout, name="signout"),
    path("", member.home, name="home"),
    path("wallet", member.wallet, name="wallet"),
    path("wallet.csv", member.wallet_csv, name="wallet_csv"),
    path("wallet/chart.svg", member.wallet_chart, name="wallet_chart"),
    path("earn", earn.activities, name="earn"),
    path("earn/<str:activity_id>", earn.activity, name="earn_activity"),
    path("earn/<str:activity_id>/progress", earn.progress, name="earn_progress"),
    path("shop", shop.shop, name="shop"),
    path("shop/cart", shop.cart, name="shop_cart"),
    path("shop/orders/<str:order_id>", shop.order, name="shop_order"),
    path("credit", shop.credit, name="credit"),
    path("credit/<str:transaction_id>", shop.credit_receipt, name="credit_receipt"),
    path("profile", profile.profile, name="profile"),
    path("profile/password", profile.password, name="profile_password"),
    path("", include("tessera.portal.events_urls")),
    path("staff/", include("tessera.portal.staff.urls")),
]
