"""What the emulator does as apiextensions-apiserver does: CRDs and custom resources.

Registration of CustomResourceDefinitions (the structural-schema and CRD spec rules)
and the checks every write of a custom resource goes through (schema validation,
pruning, defaulting), worded as Kubernetes 1.32 words them (see ``..fielderrors``).
"""
