from django.urls import path

from alerts_web.worklist.consumers import WardAlertsConsumer, WorklistConsumer

websocket_urlpatterns = [
    path("ws/wards/<str:code>/", WardAlertsConsumer.as_asgi()),
    path("ws/worklist/", WorklistConsumer.as_asgi()),
]
