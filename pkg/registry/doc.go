// Package registry scans container image repositories for their tags and,
// where a policy orders by time, the tags' creation times. It is what the
// image policy controller asks "which tags does this image have now?".
//
// Why it is shaped this way — Flux v1's image scanning hurt its users in
// two ways, and this package exists to not repeat them:
//
//   - Rate limits. Flux v1 fetched every tag's manifest on every pass and
//     answered Docker Hub's 429 TOOMANYREQUESTS by asking again. Here every
//     HTTP request to a host — the /v2/ ping, token exchanges, tag lists,
//     manifests, blobs, redirects — takes a token from that host's bucket
//     (Options.RPS, Options.Burst), waiting within the caller's context. A
//     429, or any error whose body says TOOMANYREQUESTS, blocks the host
//     for its Retry-After (delta-seconds or HTTP date; 60s when absent,
//     capped at 1h): until then no request is sent to it and Scan fails at
//     once with a *RetryAfterError. go-containerregistry's retry layer is
//     kept for network blips and 5xx only, never 429.
//   - Restarts. Flux v1 restarted with an empty cache and rescanned
//     everything at once. Here, with Options.CacheDir, every repository's
//     state is a JSON file (named by the SHA-256 of the repository, written
//     to a temporary file and renamed, 0600 in a 0700 directory, with a
//     checksum) read lazily the first time a repository is scanned after a
//     restart. A file that is truncated, corrupt, for another repository or
//     over the limits is ignored and replaced, never trusted.
//
// What is cached, and for how long:
//
//   - A repository's complete tag list, for Options.TagTTL (default 5m):
//     younger, it is served without a request; ScanOptions.Force and Forget
//     (a registry webhook) end that early. An incomplete listing — a failed
//     page, or more than Options.MaxTags tags — is never stored.
//   - Tag → digest, for each tag whose creation time was asked for: reused
//     while the tag list is served from the cache, and confirmed with one
//     HEAD (which Docker Hub does not count as a pull) when the list is
//     listed again and the digest is more than 24h old.
//   - Digest → creation time, for as long as some tag points at the digest:
//     digests are immutable, so a known digest never costs a request again.
//   - In memory, at most Options.MaxEntries repositories (least recently
//     used evicted; their files stay).
//
// Costs, in requests: the first scan of a host pings /v2/ once (per login;
// again after an hour), and a bearer registry costs one token exchange per
// repository (the token is reused while valid); then a repository of at
// most PageSize tags costs one tag-list request (two when the count is an
// exact multiple of PageSize: a full page without a Link header cannot
// tell the end from a registry that truncates silently, as
// go-containerregistry's own does). A tag new to the cache costs a
// manifest and a config request (plus one for a multi-arch index, whose
// first image gives the time).
//
// Credentials: only the login for the image's own registry host is used
// (Docker Hub's aliases are one host). It is sent to that host and, for
// bearer registries, to the token service the host's challenge names
// (go-containerregistry refuses plain-HTTP and internal-address realms
// for secure registries). Redirects to other hosts, such as blob storage,
// carry no Authorization. No login, token or password appears in an error
// or a log line: errors are scrubbed of the login's secrets (those of at
// least four characters) before they are returned, in case a registry
// echoes them.
//
// Transport: hosts in Options.Insecure are reached over plain HTTP only,
// all others over HTTPS only (go-containerregistry's loopback heuristic,
// which would fall back to HTTP, is overridden). Every response body is
// capped (4 MiB; tokens and error bodies 64 KiB) and every exchange has a
// one-minute timeout.
package registry
