/// One schema migration: a `Migrations/NNNN_name.sql` file embedded in the binary.
struct Migration: Sendable {
    let version: Int64
    let name: String
    let sql: [UInt8]

    /// Every migration this build knows, in order. `.embedInCode` makes one
    /// static per file and no listing, so a new file is added here by hand.
    static let all: [Migration] = [
        Migration(version: 1, name: "0001_ledger.sql", sql: PackageResources._001_ledger_sql),
        Migration(version: 2, name: "0002_hash_indexes.sql", sql: PackageResources._002_hash_indexes_sql),
        Migration(version: 3, name: "0003_checkpoint_parts.sql", sql: PackageResources._003_checkpoint_parts_sql),
        Migration(version: 4, name: "0004_key_filters.sql", sql: PackageResources._004_key_filters_sql),
        Migration(version: 5, name: "0005_debit_rows.sql", sql: PackageResources._005_debit_rows_sql),
        Migration(version: 6, name: "0006_catalog_versions.sql", sql: PackageResources._006_catalog_versions_sql),
        Migration(version: 7, name: "0007_audit_index.sql", sql: PackageResources._007_audit_index_sql),
    ]

    static var latestVersion: Int64 { all.last?.version ?? 0 }
}
