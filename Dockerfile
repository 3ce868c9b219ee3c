# One image for every service (model server, orchestrator, HTTP gateway); the command picks.
#   docker build -t videoedit .
# The browser assets the gateway serves itself (Swagger UI for /docs), from npm, in a stage of their own.
FROM node:22-slim AS web
COPY gateway/vendor/package.json gateway/vendor/package-lock.json /web/
RUN cd /web && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /app
# torch first, from its own layer: it is the big one. Override for another CUDA.
ARG TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
RUN pip install ${TORCH_SPEC}
COPY pyproject.toml README.md ./
COPY proto proto
COPY orchestrator orchestrator
COPY modelserver modelserver
COPY clients clients
COPY evaluation evaluation
COPY gateway gateway
COPY --from=web /web/node_modules gateway/vendor/node_modules
RUN pip install '.[models]'
# Tiny models are built here only when no weights are mounted (see README).
ENV VIDEOEDIT_CACHE_DIR=/cache HF_HOME=/cache/huggingface
# Outside a container the services listen on loopback; in one, on every interface of its own
# network namespace, so other containers and the published ports reach them.
ENV VIDEOEDIT_HOST=0.0.0.0 VIDEOEDIT_HTTP_HOST=0.0.0.0
EXPOSE 50051 50052 8000
CMD ["videoedit-orchestrator"]
