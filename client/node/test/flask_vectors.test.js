'use strict';
// The Flask-cookie signer used by the e2e tests (testing/flask.js) against the cookies the
// real Flask made (tests/vectors/flask_v1.json). zlib output differs between Node's bundled
// zlib and Debian's, so compressed vectors are compared after decompression, with the
// signature recomputed over the vector's own bytes.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const fs = require('node:fs');
const zlib = require('node:zlib');
const { flaskCookie } = require('../testing/flask');

const FILE = path.resolve(__dirname, '..', '..', '..', 'tests', 'vectors', 'flask_v1.json');

test('testing/flask.js reproduces the Flask vectors', { skip: !fs.existsSync(FILE) && 'no flask_v1.json' }, () => {
  const { vectors } = JSON.parse(fs.readFileSync(FILE, 'utf8'));
  assert.ok(vectors.length >= 5);
  let exact = 0;
  for (const v of vectors) {
    const secret = Buffer.from(v.secret_hex, 'hex');
    const payload = Buffer.from(v.payload_hex, 'hex');
    const mine = flaskCookie(secret, payload, { salt: v.salt, timestamp: v.timestamp });
    const [theirValue, theirSig] = [v.cookie.slice(0, v.cookie.lastIndexOf('.')), v.cookie.slice(v.cookie.lastIndexOf('.') + 1)];
    const key = crypto.createHmac('sha1', secret).update(v.salt).digest();
    assert.equal(crypto.createHmac('sha1', key).update(theirValue).digest('base64url'), theirSig, `${v.name}: signature rule`);
    // itsdangerous compresses when zlib saves at least 2 bytes; judged with this zlib.
    assert.equal(mine.startsWith('.'), zlib.deflateSync(payload).length < payload.length - 1,
      `${v.name}: compression decision`);
    if (!v.compressed) {
      assert.equal(mine, v.cookie, v.name);
      exact += 1;
    } else {
      const [, data, ts] = theirValue.split('.');
      const parts = mine.split('.');
      const [myData, myTs] = mine.startsWith('.') ? [parts[1], parts[2]] : [parts[0], parts[1]];
      assert.equal(myTs, ts, `${v.name}: timestamp`);
      const myPayload = Buffer.from(myData, 'base64url');
      assert.ok((mine.startsWith('.') ? zlib.inflateSync(myPayload) : myPayload).equals(payload), `${v.name}: my payload`);
      assert.ok(zlib.inflateSync(Buffer.from(data, 'base64url')).equals(payload), `${v.name}: their payload`);
    }
  }
  assert.ok(exact >= 5, `only ${exact} byte-exact comparisons`);
});
