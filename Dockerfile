# Image of the ganforge HTTP service: the FastAPI app, the web page and the
# ONNX models of models/.
#
#   docker build -t ganforge .                            # ONNX Runtime for the CPU
#   docker build --build-arg EXTRA=gpu -t ganforge:gpu .  # onnxruntime-gpu
#   docker run --rm -p 127.0.0.1:8000:8000 ganforge
FROM python:3.11-slim

# The pyproject extra to install: "serve" pulls onnxruntime, "gpu" pulls
# onnxruntime-gpu. The two packages must not be installed together, because
# the CPU one hides the CUDA execution provider of the other.
# NOTE: python:3.11-slim contains no CUDA or cuDNN libraries, which
# onnxruntime-gpu needs (https://onnxruntime.ai/docs/install). Without them
# the service falls back to the CPU provider.
ARG EXTRA=serve

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GANFORGE_MODELS_DIR=/app/models \
    GANFORGE_FRONTEND_DIR=/app/frontend

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ganforge

WORKDIR /app

# The packages are copied before the page and the models, so that changing
# those reuses the cached install layer. pip builds the wheel from
# pyproject.toml, which lists README.md and every package folder.
COPY pyproject.toml README.md ./
COPY ganforge/ ganforge/
COPY service/ service/
COPY evaluation/ evaluation/
COPY training/ training/
RUN case "$EXTRA" in \
        serve|gpu) ;; \
        *) echo "invalid EXTRA '$EXTRA': use serve or gpu" >&2; exit 1 ;; \
    esac \
    && pip install ".[$EXTRA]"

COPY frontend/ frontend/
COPY models/ models/

USER ganforge

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

CMD ["ganforge", "serve", "--host", "0.0.0.0", "--port", "8000"]
