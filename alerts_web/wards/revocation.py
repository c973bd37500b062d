"""Close live ward sockets when the right to see the ward ends.

An open dashboard would otherwise keep receiving a ward's patients after logout (in
another tab), after its session expired, or after the nurse was unassigned. Each socket
joins a per-user group; these signal handlers message it, and the consumer re-checks the
user's access and closes (``CLOSE_REVOKED``) when it is gone.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from alerts_web.wards.models import Ward


def user_group(user_pk: Any) -> str:
    return f"wards.user.{user_pk}"


def revoke(user_pk: Any, reason: str) -> None:
    """Ask every socket of the user to re-check its access (``logout``: close at once)."""
    layer = get_channel_layer()
    if layer is not None and user_pk is not None:
        async_to_sync(layer.group_send)(
            user_group(user_pk), {"type": "access.revoked", "reason": reason}
        )


@receiver(user_logged_out, dispatch_uid="wards-close-sockets-on-logout")
def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        revoke(user.pk, "logout")


@receiver(m2m_changed, sender=Ward.nurses.through, dispatch_uid="wards-close-on-unassign")
def _on_unassign(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    if action not in ("post_remove", "post_clear"):
        return
    if isinstance(instance, Ward):  # ward.nurses.remove(user...) / clear()
        users = pk_set if pk_set is not None else {None}
        for pk in users:
            if pk is not None:
                revoke(pk, "unassigned")
    else:  # user.wards.remove(ward...) / clear()
        revoke(instance.pk, "unassigned")
