"""Offline deployment artefacts: nginx, Kubernetes, Docker, and the tools that render and check them."""
