# Sourced by the GPU benchmark scripts: OUT ready, the tools' wheels installed where the GPU box has no index
# (.whl/ travels with the checkout), the checkout on PYTHONPATH, and the card named in OUT/gpu.txt.
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1
