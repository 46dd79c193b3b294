"""What the emulator does as apiextensions-apiserver does: CRDs and custom resources.

Registration of CustomResourceDefinitions (the structural-schema and CRD spec rules)
and the checks every write of a custom resource goes through (schema validation,
pruning, defaulting), worded as Kubernetes 1.32 words them (see ``..fielderrors``).

CRD writes: :func:`~.crddefaults.default_crd`, then
:func:`~.crddefaults.prepare_for_create` (or ``prepare_for_update``), then
:func:`~.crdvalidation.validate_crd` — the order the API server runs them in.
"""
