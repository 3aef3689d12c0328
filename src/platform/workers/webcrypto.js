// JWT signature checks by the runtime's WebCrypto (crypto.subtle), for the
// asymmetric JWS algorithms. The gateway parses the token, picks the key
// and reads the claims itself; this only says whether the signature is
// the key's. Node's WebCrypto runs the same file in the test suite, over
// the signature corpus the pure-Rust check is held to as well.

// JWS name -> [import algorithm, verify algorithm] (RFC 7518 section 3).
const RSA = (hash) => [{ name: "RSASSA-PKCS1-v1_5", hash }, { name: "RSASSA-PKCS1-v1_5" }];
const PSS = (hash, saltLength) => [{ name: "RSA-PSS", hash }, { name: "RSA-PSS", saltLength }];
const ALGORITHMS = {
  RS256: RSA("SHA-256"),
  RS384: RSA("SHA-384"),
  RS512: RSA("SHA-512"),
  PS256: PSS("SHA-256", 32),
  PS384: PSS("SHA-384", 48),
  PS512: PSS("SHA-512", 64),
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};

// Signatures of a fixed length (RFC 7518 section 3.4, RFC 8037 section
// 3.1): any other length is no signature of the key's. (workerd's
// Ed25519 check throws on one rather than answering false.)
const SIGNATURE_BYTES = { ES256: 64, EdDSA: 64 };

// Imported keys, by algorithm and key id, for the isolate's life. The keys
// themselves are kept, never a pending import: a promise made during one
// request is not for another request to wait on.
const imported = new Map();
const MAX_IMPORTED = 256;

async function cryptoKey(alg, id, jwk) {
  const name = `${alg} ${id}`;
  const known = imported.get(name);
  if (known) return known;
  const key = await crypto.subtle.importKey("jwk", JSON.parse(jwk), ALGORITHMS[alg][0], false, ["verify"]);
  if (imported.size >= MAX_IMPORTED) imported.clear();
  imported.set(name, key);
  return key;
}

// true or false: whether `signature` is the key's signature over `signed`;
// null when WebCrypto cannot say (an algorithm or key it does not take),
// and the gateway's own check decides.
export async function portico_verify(alg, id, jwk, signed, signature) {
  if (!Object.hasOwn(ALGORITHMS, alg)) return null;
  if (Object.hasOwn(SIGNATURE_BYTES, alg) && signature.length !== SIGNATURE_BYTES[alg]) return false;
  // Copies, taken now: the views may point into memory the caller reuses.
  const data = signed.slice();
  const sig = signature.slice();
  try {
    const key = await cryptoKey(alg, id, jwk);
    return await crypto.subtle.verify(ALGORITHMS[alg][1], key, sig, data);
  } catch {
    return null;
  }
}
