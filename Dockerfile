# apisix-operator: a static-enough binary on a distroless, non-root base.
# Build: docker build -t apisix-operator:dev .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p apisix-operator \
    && cp target/release/apisix-operator /apisix-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /apisix-operator /apisix-operator
# Numeric, so the kubelet can verify runAsNonRoot (distroless nonroot = 65532).
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/apisix-operator"]
CMD ["run"]
