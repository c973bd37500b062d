"""Close live ward sockets when the right to see the ward ends.

An open dashboard would otherwise keep receiving a ward's patients after logout (in
another tab), after its session expired or was deleted, after a password change (Django
rotates the session auth hash: HTTP already answers 302) or after the nurse was
unassigned. Each socket joins a per-user group; these signal handlers message it, and
the consumer re-checks the session and the user's wards and closes (``CLOSE_REVOKED``)
when they are gone. Changes the signals miss (raw SQL, expiry) are caught by the same
re-check before every push and on the client's pings.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.models import Session
from django.db.models.signals import m2m_changed, post_delete, post_save
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


# Saves that can end a session's authority: a new password (auth hash) or deactivation.
# last_login's update on every login (update_fields={"last_login"}) is not one of them.
_ACCOUNT_FIELDS = frozenset({"password", "is_active"})


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="wards-close-on-account")
def _on_account_change(
    sender: Any, instance: Any, created: bool, update_fields: Any, **kwargs: Any
) -> None:
    if created or (update_fields is not None and not _ACCOUNT_FIELDS & set(update_fields)):
        return
    revoke(instance.pk, "account-changed")  # the sockets re-validate their session hash


@receiver(post_delete, sender=Session, dispatch_uid="wards-close-on-session-delete")
def _on_session_delete(sender: Any, instance: Session, **kwargs: Any) -> None:
    """A deleted session (admin, ``clearsessions``, flush) ends its sockets too."""
    try:
        user_pk = instance.get_decoded().get(SESSION_KEY)
    except Exception:  # noqa: BLE001 - undecodable data authenticates no socket anyway
        return
    if user_pk is not None:
        revoke(user_pk, "session-ended")
