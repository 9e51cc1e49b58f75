# reengage container image.
#
#   docker build -t reengage .
#   docker run -d -p 127.0.0.1:8080:8080 -v reengage-data:/data \
#     -e REENGAGE__SECURITY__SECRET_KEY=... -e REENGAGE__HTTP__PUBLIC_URL=https://... reengage
#
# Everything the binary needs at run time is compiled into it: the default
# settings (config/default.toml), the word and tone lists (config/words.toml,
# config/tone.toml), the templates (templates/, through rust-embed), the
# migrations (migrations/, through sqlx::migrate!) and the UI's stylesheet.
# So the image holds the binary alone; /data holds the state.

############################################################################
# Builder
############################################################################
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# Dependencies first, so that a change to reengage's own code does not rebuild
# them: build the dependency graph against stub targets, then drop the stubs'
# artifacts. benches/classify.rs must exist because Cargo.toml declares
# [[bench]] name = "classify" (cargo reads every target when it loads the
# manifest).
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && echo 'fn main() {}' > benches/classify.rs \
 && cargo build --release --locked \
 && rm -rf src benches \
      target/release/reengage target/release/reengage.d target/release/libreengage.* \
      target/release/deps/reengage-* target/release/deps/libreengage-* \
      target/release/.fingerprint/reengage-*

# The rest of what the build reads: src/ (with src/web/ui/style.css), and what
# include_str!, rust-embed and sqlx::migrate! compile in.
COPY src ./src
COPY benches ./benches
COPY config ./config
COPY templates ./templates
COPY migrations ./migrations
# COPY keeps the files' times; make sure cargo sees them as newer than the stubs.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked \
 && install -D -m 0755 target/release/reengage /out/reengage

############################################################################
# Runtime
############################################################################
FROM debian:bookworm-slim

# ca-certificates: TLS to SMTP, IMAP and Twilio (rustls reads the system's
# roots). curl: the HEALTHCHECK below (reengage has no probe command).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed, non-root identity, so that a volume or bind mount can be owned to
# match: chown -R 10001:10001 on the host folder.
RUN groupadd --system --gid 10001 reengage \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin reengage \
 && install -d -o 10001 -g 10001 -m 0700 /data

COPY --from=builder /out/reengage /usr/local/bin/reengage

# State lives in /data: the SQLite database (when database.url is sqlite), the
# outbox, and the optional folders below. A new named volume takes the folder's
# owner and mode (10001, 0700) from the image.
ENV REENGAGE__DATABASE__URL=sqlite:///data/reengage.db \
    REENGAGE__OUTBOX__DIR=/data/outbox \
    REENGAGE__LOG__FORMAT=json \
    REENGAGE__HTTP__BIND=0.0.0.0:8080
# Optional template overrides (the built-in templates are used while the folder
# is missing) and the inbound `folder` transport's drop folder. The defaults are
# relative (templates, data/inbox); these pin them under /data.
ENV REENGAGE__TEMPLATES__DIR=/data/templates \
    REENGAGE__EMAIL__INBOUND__FOLDER__DIR=/data/inbox

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080

# /livez: the process is up (for the engine deciding whether it is healthy).
# Load balancers want /readyz (the database answers); /healthz is the detail
# for people and answers 503 when a channel is paused, so it is no liveness
# signal. start-period covers the migrations that run before the server binds.
# If you change REENGAGE__HTTP__BIND's port, override this HEALTHCHECK too.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/livez || exit 1

ENTRYPOINT ["/usr/local/bin/reengage"]
CMD ["serve"]
