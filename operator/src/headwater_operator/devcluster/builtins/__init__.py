"""What the emulator does for the built-in kinds it serves, as the Kubernetes API server does.

Object metadata rules shared by every kind, and the validation of the built-in objects
Headwater writes (Pods, Events, Leases and their neighbours), checked against a pinned
Kubernetes version (1.32), worded as that version words them (see ``..fielderrors``).
"""
