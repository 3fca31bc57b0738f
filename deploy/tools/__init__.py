"""Render and check the deployment files: nginx template, kustomize subset, HPA simulator, lints."""
