"""The protocol's own tests, shipped with the package so an installed suite runs from any directory:

    pytest --pyargs parity_lib.suite -m preflight --parity-model /data/Qwen2.5-7B-Instruct:16:15
    pytest --pyargs parity_lib.suite -m "preflight or study" --parity-model ./my-llama:12:8.0

`preflight/` is Section D (the tensor-site checklist), `study/` Sections B/C (cycles, parity, steering
semantics). They only assert; the fixtures that compute and record live in `parity_lib.plugin.fixtures`.
"""
