# One image for every Vireo service (compose.yaml picks the subcommand).
# Build stage: Go with OpenCV and OpenBLAS headers; runtime stage: Debian
# bookworm with exactly the shared libraries the binary links (found with
# ldd in the build stage), the bundled models and opencv-doc's sample
# videos (the demo's sources).
#
# VIREO_TAGS=cuda builds the GPU variant (compose.yaml's infer-gpu, profile
# gpu): the build stage adds Debian's contrib/non-free CUDA headers and
# libcuda to link against; the runtime stage leaves libcuda out, since the
# NVIDIA container runtime mounts the host driver's libcuda.so.1. (Not
# built on the project's machines, which have no Docker engine.)

FROM golang:1.26-bookworm AS build
ARG VIREO_TAGS=""
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      build-essential pkg-config libopenblas-dev libopencv-dev && rm -rf /var/lib/apt/lists/*
RUN case ",$VIREO_TAGS," in *,cuda,*) \
      sed -i 's/^Components: main$/Components: main contrib non-free/' /etc/apt/sources.list.d/debian.sources \
      && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           nvidia-cuda-dev libcuda1 && rm -rf /var/lib/apt/lists/* ;; \
    esac
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -tags "$VIREO_TAGS" -o /out/vireo ./cmd/vireo
# The Debian packages that own the libraries the binary needs at run time
# (not the driver's: libcuda comes from the host).
RUN ldd /out/vireo | awk '/=> \//{print $3}' | while read -r lib; do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null; \
    done | cut -d: -f1 | sort -u | grep -v -e '-dev$' -e '^libcuda1$' -e '^libnvidia-' > /out/runtime-packages.txt \
    && cat /out/runtime-packages.txt

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
# For the NVIDIA container runtime (GPU variant); ignored elsewhere.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
EXPOSE 8080 9090
ENTRYPOINT ["vireo"]
