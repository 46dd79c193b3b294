"""What the emulator does as apiextensions-apiserver does: CRDs and custom resources.

Registration of CustomResourceDefinitions (the structural-schema and CRD spec rules)
and the checks every write of a custom resource goes through, worded as Kubernetes
1.32 words them (see ``..fielderrors``).

CRD writes: :func:`~.crddefaults.default_crd`, then
:func:`~.crddefaults.prepare_for_create` (or ``prepare_for_update``), then
:func:`~.crdvalidation.validate_crd` — the order the API server runs them in; the
registry (:mod:`.registry`) names, establishes and serves them.

Custom resources, in the server's order (:mod:`.validation` tells the whole sequence for
create, update, patch and status; :mod:`.strategy` runs it):

* :mod:`.fieldvalidation`: ``fieldValidation`` Strict/Warn, duplicate fields;
* :mod:`.pruning`: ``prune``, ``unknown_fields`` (with :mod:`.objectmeta`);
* :mod:`.defaulting`: ``apply_defaults``;
* :mod:`.validation`: ``validation_errors``, ``status_validation_errors``,
  ``strategy_errors``, ``has_blocking_errors`` and the rest, over
  :mod:`.schemavalidator` (with :mod:`.formats`), :mod:`.embedded` and :mod:`.listtype`.
"""
