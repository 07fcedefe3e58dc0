# One image for every role (leadhook controller, leadhook server): a static binary on
# distroless nonroot. Build: make docker-build IMG=registry.example.com/leadhook:0.1.0
FROM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /src
# Modules first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static (no cgo: distroless/static has no libc), reproducible paths, no debug info.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w" -o /out/leadhook .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/leadhook /leadhook
# The distroless nonroot user; the chart's runAsNonRoot needs a numeric user.
USER 65532:65532
ENTRYPOINT ["/leadhook"]
