# Static minerguard binary on a distroless base: docker build -t minerguard .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /minerguard ./cmd/minerguard

FROM gcr.io/distroless/static-debian12
COPY --from=build /minerguard /minerguard
ENTRYPOINT ["/minerguard"]
