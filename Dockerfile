# The drainpipe image: built with the official Rust image, run from an empty one (no shell, no
# C library: the binary is static), as user 65532, with the spool on a volume.
#
#   docker build -t drainpipe --build-arg DRAINPIPE_GIT_REV="$(git rev-parse --short=12 HEAD)" .
#   docker run --stop-timeout 40 -p 8080:8080 -v drainpipe-spool:/var/lib/drainpipe \
#       -e ELASTICSEARCH_URL=http://elasticsearch:9200 drainpipe
#
# scripts/test builds the runtime stage with podman around a binary built here and runs it
# (deploy/check), since no base image can be pulled on the test machines.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# .git is not in the build context: the revision for `drainpipe --version` comes in here.
ARG DRAINPIPE_GIT_REV=unknown
ENV DRAINPIPE_GIT_REV=${DRAINPIPE_GIT_REV}
# deploy/build-static: the release build linked statically against glibc (the same script
# makes the binary deploy/check puts in this image); rootfs lays out the image's files.
RUN deploy/container/rootfs "$(deploy/build-static)" /rootfs

# Everything from here on is what runs; deploy/check builds it with podman.
FROM scratch AS base
COPY --from=build /rootfs/ /
USER 65532:65532
ENV DRAINPIPE_SPOOL_DIR=/var/lib/drainpipe/spool
VOLUME ["/var/lib/drainpipe"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/drainpipe", "healthcheck"]

# Heroku's container stack runs CMD through /bin/sh, which this image does not have; an
# ENTRYPOINT alone runs as it is (heroku.yml builds this stage).
FROM base AS heroku
ENTRYPOINT ["/usr/local/bin/drainpipe", "serve"]

# The default (last) stage: `docker run drainpipe setup …` runs another command.
FROM base AS runtime
ENTRYPOINT ["/usr/local/bin/drainpipe"]
CMD ["serve"]
