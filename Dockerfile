# One image for every Vireo service (compose.yaml picks the subcommand).
# Build stage: Go with OpenCV and OpenBLAS headers; runtime stage: Debian
# bookworm with exactly the shared libraries the binary links (found with
# ldd in the build stage), the bundled models and opencv-doc's sample
# videos (the demo's sources).

FROM golang:1.26-bookworm AS build
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential pkg-config libopenblas-dev libopencv-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -o /out/vireo ./cmd/vireo
# The Debian packages that own the libraries the binary needs at run time.
RUN ldd /out/vireo | awk '/=> \//{print $3}' | while read -r lib; do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null; \
    done | cut -d: -f1 | sort -u | grep -v -- '-dev$' > /out/runtime-packages.txt && cat /out/runtime-packages.txt

FROM debian:bookworm-slim
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive xargs -a /tmp/runtime-packages.txt \
      apt-get install -y -qq --no-install-recommends ca-certificates opencv-doc opencv-data \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/vireo /usr/local/bin/vireo
COPY models /usr/share/vireo/models
RUN useradd --system --home /var/lib/vireo --create-home vireo
USER vireo
WORKDIR /var/lib/vireo
EXPOSE 8080 9090
ENTRYPOINT ["vireo"]
