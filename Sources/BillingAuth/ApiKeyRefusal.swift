/// Why an API key was refused, in the order the checks run. Carries no
/// part of the token; the service layer turns each case into a status.
public enum ApiKeyRefusal: Error, Sendable, Equatable {
    /// No key with this id, or the token is not the one whose hash is stored.
    case unknown
    case revoked
    case expired
}
