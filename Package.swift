// swift-tools-version:6.0
import PackageDescription

// The per-request transport modules are single-threaded by design (each
// connection is confined to one event loop); their classes' dynamic
// exclusivity checks cost ~8% of a call in release builds, so release
// builds of those modules skip them. Debug builds (and the tests) keep them.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

// Dependencies point one way: C shims and pure domain at the bottom, sockets
// and the executable at the top. See README "Architecture".
let package = Package(
    name: "billing",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "billing", targets: ["billing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // Metrics API (recording points in the modules) and its Prometheus backend.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Latency percentiles of `billing load`.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // C libraries, found through pkg-config; Debian packages named as providers.
        .systemLibrary(
            name: "CNGHTTP2", pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(
            name: "COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        // epoll and eventfd: Linux headers Swift's Glibc module leaves out.
        .systemLibrary(name: "CLinux"),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        // The server's allocator: glibc's malloc cost ~10 % of a debit's CPU.
        .systemLibrary(
            name: "CJemalloc", pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]),

        // Money, prices, plans, rejections. Pure Swift, no I/O.
        .target(name: "BillingCore"),

        // The ledger actor, its state machine, group commit, the LedgerStore protocol.
        .target(
            name: "BillingLedger",
            dependencies: [
                "BillingCore", "BillingProto", "CLinux",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]),
        // SQLite: connection, statements, migrations, and the LedgerStore over it.
        .target(
            name: "BillingSQLite",
            dependencies: [
                "CSQLite", "BillingLedger", "BillingProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            resources: [.embedInCode("Migrations/0001_ledger.sql"), .embedInCode("Migrations/0002_hash_indexes.sql"),
                        .embedInCode("Migrations/0003_checkpoint_parts.sql"),
                        .embedInCode("Migrations/0004_key_filters.sql"),
                        .embedInCode("Migrations/0005_debit_rows.sql"),
                        .embedInCode("Migrations/0006_catalog_versions.sql"),
                        .embedInCode("Migrations/0007_audit_index.sql")]),

        // Who is calling: API keys (hashed, constant-time), platform JWTs
        // (HMAC-SHA256 via libcrypto), principals, scopes and roles.
        .target(name: "BillingAuth", dependencies: ["BillingCore", "TLS"]),

        // Generated protobuf code only (schema/generate.sh writes it).
        .target(
            name: "BillingProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        // nghttp2 session wrapper: bytes in, events out, no sockets.
        .target(name: "HTTP2", dependencies: ["CNGHTTP2"], swiftSettings: hotPath),
        // OpenSSL on in-memory buffers, ALPN h2, no sockets.
        .target(name: "TLS", dependencies: ["COpenSSL"]),
        // gRPC over HTTP/2: framing, routing by :path, deadlines, status and trailers.
        .target(
            name: "GRPC",
            dependencies: [
                "HTTP2", "BillingProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: hotPath),
        // The only socket code: epoll event loops, accept, socket <-> TLS <-> HTTP/2.
        .target(
            name: "Server",
            dependencies: [
                "GRPC", "HTTP2", "TLS", "CLinux",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: hotPath),
        // A blocking gRPC client on our HTTP/2 session: `billing load` and `billing call`.
        .target(name: "Client", dependencies: ["HTTP2", "GRPC", "TLS", "CLinux"]),
        // `billing load`'s engine: workers, pacing, tallies, percentiles, summary.
        .target(
            name: "LoadGenerator",
            dependencies: [
                "Client", "GRPC", "HTTP2", "TLS", "BillingProto", "BillingCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        // Invoice PDFs: a small PDF 1.4 writer with the standard Helvetica fonts. Pure Swift.
        .target(name: "InvoicePDF"),
        // RPC handlers: proto <-> domain, rejection -> status.
        .target(
            name: "BillingService",
            dependencies: [
                "GRPC", "BillingProto", "BillingCore", "BillingLedger", "BillingAuth", "TLS", "InvoicePDF",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "billing",
            dependencies: [
                "Server", "GRPC", "BillingService", "BillingProto", "BillingCore", "BillingLedger", "BillingSQLite", "BillingAuth", "Client",
                "InvoicePDF",
                "LoadGenerator", "CJemalloc",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        .testTarget(name: "BillingCoreTests", dependencies: ["BillingCore"]),
        .testTarget(name: "BillingLedgerTests", dependencies: ["BillingLedger", "BillingCore", "BillingProto", "BillingSQLite"]),
        .testTarget(name: "BillingSQLiteTests", dependencies: [
            "BillingSQLite", "BillingLedger", "BillingProto", "BillingCore", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .testTarget(name: "BillingAuthTests", dependencies: ["BillingAuth", "TLS", "BillingCore"]),
        .testTarget(name: "HTTP2Tests", dependencies: ["HTTP2"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "BillingCore"]),
        .testTarget(
            name: "LoadGeneratorTests",
            dependencies: ["LoadGenerator", "HTTP2", "BillingProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "InvoicePDFTests", dependencies: ["InvoicePDF"]),
        .testTarget(name: "GRPCTests", dependencies: ["GRPC", "HTTP2", "BillingProto", "BillingService"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "GRPC", "CLinux", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "BillingServiceTests",
            dependencies: ["BillingService", "BillingProto", "BillingCore", "BillingLedger", "BillingSQLite", "GRPC",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf"), .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
