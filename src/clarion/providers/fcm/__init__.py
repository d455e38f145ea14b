"""FCM HTTP v1 (Firebase Cloud Messaging): the Android sender.

``FcmSender(settings)`` implements ``clarion.domain.outcomes.Sender``; ``auth`` gets OAuth2
access tokens per service account, ``payload`` builds the message, ``errors`` classifies
FCM's answers.
"""

from clarion.providers.fcm.client import FcmSender

__all__ = ["FcmSender"]
