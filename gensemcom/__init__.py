"""gensemcom: a generative semantic communication simulator for images.

Kept import-light on purpose: services, tests and GPU jobs import sub-packages
directly, so importing ``gensemcom`` never pulls in torch or grpc.
"""

__version__ = "0.1.0"
