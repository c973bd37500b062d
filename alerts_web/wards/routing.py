from django.urls import path

from alerts_web.wards.consumers import WardAlertsConsumer

websocket_urlpatterns = [
    path("ws/wards/<str:code>/", WardAlertsConsumer.as_asgi()),
]
