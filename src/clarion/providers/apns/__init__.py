"""APNs (Apple Push Notification service) over HTTP/2: the ``ApnsSender`` adapter.

Modules: ``payload`` (the CIJ payload and ``apns-*`` headers, size limits), ``errors`` (APNs
answers → outcomes), ``auth`` (the shared ES256 provider token, certificate TLS contexts),
``client`` (one HTTP/2 connection on ``jh2``, ``h2``'s fork with compiled HPACK), ``pool``
(several connections per credentials and host), ``sender`` (the ``Sender`` port).
``ProviderSettings.apns_url`` replaces both Apple hosts (an emulator), ``ProviderSettings.ca_file``
adds trust for it.
"""

from clarion.providers.apns.sender import PRODUCTION_URL, SANDBOX_URL, ApnsSender

__all__ = ["PRODUCTION_URL", "SANDBOX_URL", "ApnsSender"]
