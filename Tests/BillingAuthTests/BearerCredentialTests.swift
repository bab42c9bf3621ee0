import BillingAuth
import Testing

struct HeaderCase: Sendable, CustomTestStringConvertible {
    let name: String
    let header: String?
    let expected: Result<Credential, AuthError>
    var testDescription: String { name }

    init(_ name: String, _ header: String?, _ expected: Result<Credential, AuthError>) {
        self.name = name
        self.header = header
        self.expected = expected
    }
}

let scheme = AuthError.malformed("expected Bearer scheme and a token")
let charset = AuthError.malformed("token has characters outside base64")

let headerCases: [HeaderCase] = [
    HeaderCase("missing", nil, .failure(.missing)),
    HeaderCase("empty", "", .failure(scheme)),
    HeaderCase("Basic scheme", "Basic dXNlcjpwYXNz", .failure(scheme)),
    HeaderCase("scheme only", "Bearer", .failure(scheme)),
    HeaderCase("scheme and space only", "Bearer ", .failure(scheme)),
    HeaderCase("scheme without space", "Bearerabc", .failure(scheme)),
    HeaderCase("tab after scheme", "Bearer\tabc", .failure(scheme)),
    HeaderCase("two spaces", "Bearer  abc", .failure(charset)),
    HeaderCase("trailing space", "Bearer abc ", .failure(charset)),
    HeaderCase("two tokens", "Bearer abc def", .failure(charset)),
    HeaderCase("header injection", "Bearer x\r\nfoo: y", .failure(charset)),
    HeaderCase("bare newline", "Bearer x\ny", .failure(charset)),
    HeaderCase("NUL byte", "Bearer x\0", .failure(charset)),
    HeaderCase("non-ASCII", "Bearer tökén", .failure(charset)),
    HeaderCase("'=' inside", "Bearer a=b", .failure(charset)),
    HeaderCase("only '='", "Bearer ==", .failure(charset)),
    HeaderCase("oversized", "Bearer " + String(repeating: "a", count: 8193), .failure(.tooLarge)),
    HeaderCase("at the size limit", "Bearer " + String(repeating: "a", count: 8192), .success(.jwt(String(repeating: "a", count: 8192)))),
    HeaderCase("lower-case scheme", "bearer abc.def.ghi", .success(.jwt("abc.def.ghi"))),
    HeaderCase("upper-case scheme", "BEARER abc", .success(.jwt("abc"))),
    HeaderCase("trailing '='", "Bearer abc==", .success(.jwt("abc=="))),
    HeaderCase("b64token punctuation", "Bearer a-b.c_d~e+f/g", .success(.jwt("a-b.c_d~e+f/g"))),
    HeaderCase("API key", "Bearer \(sampleKey)", .success(.apiKey(keyID: "0123456789ab", token: sampleKey))),
    HeaderCase("malformed API key", "Bearer bk_0123", .failure(.malformed("not a valid API key"))),
    HeaderCase("API key with a character flipped", "Bearer \(sampleKey.dropLast())B", .failure(.malformed("not a valid API key"))),
]

@Test(arguments: headerCases)
func bearerHeaderParsing(testCase: HeaderCase) {
    #expect(BearerCredential.parse(authorizationHeader: testCase.header) == testCase.expected)
}

@Test func generatedKeyAndSignedTokenParse() {
    let key = ApiKeyMaterial.generate()
    #expect(BearerCredential.parse(authorizationHeader: "Bearer \(key.token)") == .success(.apiKey(keyID: key.keyID, token: key.token)))
    let jwt = TestTokens.valid()
    #expect(BearerCredential.parse(authorizationHeader: "Bearer \(jwt)") == .success(.jwt(jwt)))
}

@Test func credentialDescriptionsHideTokens() {
    let key = ApiKeyMaterial.generate()
    let jwt = TestTokens.valid()
    for credential in [Credential.apiKey(keyID: key.keyID, token: key.token), .jwt(jwt)] {
        var dumped = ""
        dump(credential, to: &dumped)
        for text in [String(describing: credential), String(reflecting: credential), "\(credential)", dumped] {
            #expect(!text.contains(key.token))
            #expect(!text.contains(jwt))
            #expect(!text.contains(String(key.token.suffix(43))))
        }
    }
}

@Test(arguments: headerCases)
func cachedParsingAnswersAsParsingDoes(testCase: HeaderCase) {
    let cache = BearerCredentialCache()
    // The second answer comes from memory when the first was a success.
    #expect(cache.parse(authorizationHeader: testCase.header) == testCase.expected)
    #expect(cache.parse(authorizationHeader: testCase.header) == testCase.expected)
    let kept = if case .success = testCase.expected { 1 } else { 0 }
    #expect(cache.count == kept)
}

@Test func credentialCacheStaysWithinItsCapacity() {
    let cache = BearerCredentialCache(capacity: 4)
    for index in 0..<10 {
        #expect(cache.parse(authorizationHeader: "Bearer token\(index)") == .success(.jwt("token\(index)")))
        #expect(cache.count <= 4)
    }
    // Emptied at the capacity, then refilled: tokens 8 and 9.
    #expect(cache.count == 2)
    // A header parsed earlier and dropped parses again, to the same answer.
    #expect(cache.parse(authorizationHeader: "Bearer token0") == .success(.jwt("token0")))
}
