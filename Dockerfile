# kord's orderer image: a drop-in for hyperledger/fabric-orderer in docker-compose files.
#
#   docker build -t kordhq/orderer:latest .
#   docker build --build-arg VERSION=$(git describe --tags --always) -t kordhq/orderer:dev .
#
# Same conventions as Fabric's image: orderer.yaml in FABRIC_CFG_PATH=/etc/hyperledger/fabric,
# every key overridable with ORDERER_* variables, ledger under
# /var/hyperledger/production/orderer, gRPC on 7050, `orderer` as the command. Unlike Fabric's,
# it runs as an unprivileged user (uid 10001): bind-mounted directories it writes to (the
# ledger) must be writable by that uid; named volumes get the right owner automatically.
# The ENV defaults below only make the listeners reachable from outside the container and
# turn Prometheus metrics on; compose env lists override them.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags "-s -w -X github.com/kordhq/kord/orderer/server.Version=${VERSION}" -o /out/orderer ./cmd/orderer && \
    go build -trimpath -ldflags "-s -w -X github.com/kordhq/kord/orderer/server.Version=${VERSION}" -o /out/kordctl ./cmd/kordctl

FROM alpine:3.22
RUN apk add --no-cache ca-certificates tzdata && \
    addgroup -S -g 10001 orderer && \
    adduser -S -D -H -u 10001 -G orderer -h /var/hyperledger orderer && \
    mkdir -p /etc/hyperledger/fabric /var/hyperledger/production/orderer /var/hyperledger/orderer && \
    chown -R orderer:orderer /var/hyperledger
COPY --from=build /out/orderer /out/kordctl /usr/local/bin/
COPY config/orderer.yaml /etc/hyperledger/fabric/orderer.yaml
ENV FABRIC_CFG_PATH=/etc/hyperledger/fabric
ENV ORDERER_GENERAL_LISTENADDRESS=0.0.0.0
ENV ORDERER_OPERATIONS_LISTENADDRESS=0.0.0.0:8443
ENV ORDERER_METRICS_PROVIDER=prometheus
ENV ORDERER_FILELEDGER_LOCATION=/var/hyperledger/production/orderer
VOLUME /var/hyperledger/production/orderer
EXPOSE 7050 8443
USER orderer
WORKDIR /var/hyperledger
CMD ["orderer"]
