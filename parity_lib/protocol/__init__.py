"""The protocol's rules, pure: metrics, decision rules, findings, the first line, output labels, faults."""
