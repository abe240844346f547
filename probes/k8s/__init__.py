"""Kubernetes probes: the declared decision (``k8s.can_i``, a SelfSubjectAccessReview) and the live one
(``k8s.request``), as the environment's service account or kubeconfig identity. Exceptions are translated in
:mod:`.errors`; the shared, correlation-stamping client lives in :mod:`.client`."""
