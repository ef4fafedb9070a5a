# syntax=docker/dockerfile:1
# The MAI-Image gateway, and (target `emulator`) the offline fal stand-in used by docker-compose.
#   docker build -t mai-image-gateway .                        # the gateway (last stage)
#   docker build --target emulator -t mai-image-fal-emulator .
# The build stages run on the builder's own platform and publish for the target architecture,
# so a multi-platform build does not emulate the SDK.

FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk:10.0 AS restore
ARG TARGETARCH
WORKDIR /src
# Project files and build settings first: this layer, and the restore below, stay cached until
# a package or a project reference changes.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Gateway/Gateway.csproj src/Gateway/
COPY src/FalEmulator/FalEmulator.csproj src/FalEmulator/
# The gateway restores for Release, the configuration it is published in: only its Debug build references
# the fal stand-in, and a restore for Debug would carry the stand-in's packages (SkiaSharp) into the image.
# With -a it restores for a runtime, which src/Gateway/Gateway.csproj makes a self-contained, trimmed build
# (the runtime packs and the trimmer come in here).
RUN dotnet restore src/Gateway/Gateway.csproj -a $TARGETARCH -p:Configuration=Release \
 && dotnet restore src/FalEmulator/FalEmulator.csproj -a $TARGETARCH

FROM restore AS source
COPY appsettings.json ./
COPY src/ src/

FROM source AS publish-gateway
ARG TARGETARCH
# Self-contained and trimmed (Gateway.csproj): its own runtime, only the framework code it uses, started by its
# own executable; about a third less memory than the same build on the shared framework (README, issue 13).
RUN dotnet publish src/Gateway -c Release --no-restore -a $TARGETARCH -o /app

FROM source AS publish-emulator
ARG TARGETARCH
RUN dotnet publish src/FalEmulator -c Release --no-restore -a $TARGETARCH -p:UseAppHost=false -o /app

# The offline fal stand-in (docker-compose profile `offline`); never deployed to a cluster.
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS emulator
WORKDIR /app
COPY --from=publish-emulator /app .
EXPOSE 8080
USER $APP_UID
# The stand-in reads its address from --urls (its own configuration, not ASPNETCORE_*) and
# otherwise binds loopback only.
ENTRYPOINT ["dotnet", "FalEmulator.dll", "--urls", "http://+:8080"]

# The gateway. Last, so that a plain `docker build .` produces it. It carries its own runtime, so its base
# is runtime-deps: the native libraries .NET needs (OpenSSL, CA certificates, zlib) and the `app` user.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0 AS gateway
WORKDIR /app
COPY --from=publish-gateway /app .
ENV ASPNETCORE_HTTP_PORTS=8080
# A gen0 budget of 12 MiB (an environment-only GC setting). Left alone, the GC sizes it from the CPU cache the node
# reports, so it differs from node to node; with ~2 MiB a poll-heavy load ran ~86 gen0 collections a second, pauses 10%
# of the time. A pause costs about the same whatever the budget (~1 ms, mostly fixed), so the budget sets how often the
# requests in flight wait: 6 MiB halved the collections for ~2 MiB of RSS; 12 MiB halves them again, which with 1,000
# event streams open took p99 from 1.59 to 1.04 x nginx's for ~6 MiB more (README, issue 13).
ENV DOTNET_GCgen0size=0xC00000
# At most two glibc malloc arenas instead of up to eight per core: the runtime's own native allocations are few and
# short, and the extra arenas' touched pages stayed in RSS. The throughput benchmark: 116.4 -> 109.7 MiB under load.
ENV MALLOC_ARENA_MAX=2
# Blocks of 64 KiB and more straight from mmap, returned when freed, instead of glibc's threshold that rises to 32 MiB
# as such blocks are freed: the JIT's 64 KiB arenas then stayed behind as free holes in the heap after start-up
# (14 MiB of the heap under load, 7 after malloc_trim). Under load 106 -> 99 MiB at the same req/s (README, issue 13).
ENV MALLOC_MMAP_THRESHOLD_=65536
# The tests and the benchmark run the published build with this stage's DOTNET_ and MALLOC_ variables (ProcessGateway).
EXPOSE 8080
# The image's unprivileged `app` user (UID 1654); numeric, so Kubernetes' runAsNonRoot can verify it.
USER $APP_UID
ENTRYPOINT ["./Gateway"]
