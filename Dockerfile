# Build a static binary, then ship it on distroless nonroot. One image for every role.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w" -o /out/leadhook .

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/leadhook /leadhook
USER 65532:65532
ENTRYPOINT ["/leadhook"]
