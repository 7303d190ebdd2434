# One port in front of N tabserve replicas: HAProxy from Debian. It finds the replicas through
# Docker's DNS (server-template + resolvers), so `--scale tabserve=N` needs no config change,
# and sends traffic only to replicas whose /ready answers 200 (docs/adr/0013).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        haproxy >/dev/null \
    && rm -rf /var/lib/apt/lists/*
COPY deploy/stack/haproxy.cfg /etc/haproxy/haproxy.cfg
# compose's healthcheck runs this.
COPY deploy/stack/lb-healthcheck.sh /usr/local/bin/lb-healthcheck.sh
USER haproxy
EXPOSE 8000 8404
ENTRYPOINT ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
