#!/usr/bin/env python3
"""Writes the seed corpus, fuzz/corpus/<harness>/<name>: small meaningful inputs.

Run from anywhere: python3 fuzz/make_seeds.py. It rewrites only the files it
names, so inputs added by hand (or merged from a fuzzing run) are kept. The
fixed session token, key and ids are those of fuzz/fuzz_env.hpp: FUZZ ONLY.
"""
import base64
import hashlib
import os
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

SESSION = 'FuzzOnlySessionToken_0123456789abcdefghijkl'
KEY_RANDOM = 'FuzzOnlyKey0123456789abcdefghijk'
ROTATE_ID = 'key_000000000FuzzRotateVictim01'
REVOKE_ID = 'key_000000000FuzzRevokeVictim01'
LEAD_ID = 'lead_000000000FuzzLead000000001'
INVOICE_ID = 'inv_000000000FuzzInvoice0000001'
OTHER_LEAD_ID = 'lead_000000000FuzzOtherOrgLead1'
HOST = '127.0.0.1:8080'


def b62(n, width=6):
    s = ''
    while True:
        s = B62[n % 62] + s
        n //= 62
        if n == 0:
            return s.rjust(width, '0')


def key(random32):
    return 'dvs_live_' + random32 + b62(zlib.crc32(random32.encode()))


def cursor(created_at, id_):
    """Version 1 cursors (still read): base64url("c1:<t>:<id>" + 6-byte SHA-256 check tag)."""
    plain = f'c1:{created_at}:{id_}'.encode()
    tag = hashlib.sha256(b'devsphere cursor v1\n' + plain).digest()[:6]
    return base64.urlsafe_b64encode(plain + tag).rstrip(b'=').decode()


def siphash24(key, data):
    """SipHash-2-4 (libsodium's crypto_shorthash), 8 bytes little-endian."""
    mask = (1 << 64) - 1

    def rotl(x, b):
        return ((x << b) | (x >> (64 - b))) & mask

    k0, k1 = int.from_bytes(key[:8], 'little'), int.from_bytes(key[8:], 'little')
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask; v[3] = rotl(v[3], 16); v[3] ^= v[2]
            v[0] = (v[0] + v[3]) & mask; v[3] = rotl(v[3], 21); v[3] ^= v[0]
            v[2] = (v[2] + v[1]) & mask; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32)

    tail = len(data) % 8
    for i in range(0, len(data) - tail, 8):
        m = int.from_bytes(data[i:i + 8], 'little')
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    m = ((len(data) & 0xff) << 56) | int.from_bytes(data[len(data) - tail:], 'little')
    v[3] ^= m
    rounds(2)
    v[0] ^= m
    v[2] ^= 0xff
    rounds(4)
    return ((v[0] ^ v[1] ^ v[2] ^ v[3]) & mask).to_bytes(8, 'little')


def cursor_v2(created_at, id_):
    """core::encode_cursor: base64url("c2:<t>:<id>" + 6 bytes of SipHash-2-4 under a fixed key)."""
    plain = f'c2:{created_at}:{id_}'.encode()
    tag = siphash24(b'devsphere cursor', plain)[:6]
    return base64.urlsafe_b64encode(plain + tag).rstrip(b'=').decode()


KEY = key(KEY_RANDOM)


def req(method, target, headers=(), body=None, auth=False, cookie=False):
    lines = [f'{method} {target} HTTP/1.1', f'Host: {HOST}', 'User-Agent: seed']
    if auth:
        lines.append(f'Authorization: Bearer {KEY}')
    if cookie:
        lines.append(f'Cookie: dvs_session={SESSION}')
    lines += list(headers)
    if body is not None:
        lines += ['Content-Type: application/json', f'Origin: http://{HOST}',
                  f'Content-Length: {len(body.encode())}']
    return '\r\n'.join(lines) + '\r\n\r\n' + (body or '')


SEEDS = {
    'key_parse': {
        'valid': KEY,
        'valid2': key('0123456789ABCDEFGHIJKLMNOPQRSTUV'),
        'bad_checksum': KEY[:-1] + ('A' if KEY[-1] != 'A' else 'B'),
        'short': KEY[:30],
        'wrong_prefix': 'dvs_test_' + KEY[9:],
        'not_base62': KEY[:20] + '-' + KEY[21:],
    },
    'authorization': {
        'bearer': f'Bearer {KEY}',
        'lower_spaces': f'bearer   {KEY}  ',
        'upper_tab': f'BEARER {KEY}\t',
        'basic': 'Basic dXNlcjpwYXNz',
        'bearer_only': 'Bearer',
        'bearer_garbage': 'Bearer dvs_live_abc',
        'cookie': f'theme=dark; dvs_session={SESSION}; x=1',
        'path_with_key': f'/v1/leads/{KEY}/dvs_live_/dvs_live_dvs_live_x',
    },
    'cursor': {
        'lead': cursor(1800000000, LEAD_ID),
        'invoice': cursor(1799999000, INVOICE_ID),
        'request': cursor(1800000123, 'req_0DhW7s2aB0000000000000001'),
        'audit': cursor(1, 'evt_0DhW7s2aB0000000000000001'),
        'negative_time': cursor(-5, LEAD_ID),
        'tampered': cursor(1800000000, LEAD_ID)[:-2] + 'AA',
        'lead_v2': cursor_v2(1800000000, LEAD_ID),
        'request_v2': cursor_v2(1800000123, 'req_0DhW7s2aB0000000000000001'),
        'tampered_v2': cursor_v2(1800000000, LEAD_ID)[:-2] + 'AA',
        'garbage': 'not-a-cursor!',
    },
    'query': {
        'limit_status': '/v1/leads?limit=2&status=new',
        'cursor_since': f'/v1/invoices?cursor={cursor(1799999000, INVOICE_ID)}'
                        '&updated_since=2026-11-29T12:00:00Z&status=paid',
        'typo': '/v1/leads?limt=5',
        'repeated': '/v1/leads?limit=1&limit=2',
        'audit': '/api/audit-events?limit=100',
        'escapes': '/v1/le%61ds?%6cimit=3&updated_since=2026-11-29T12%3A00%3A00%2B02%3A00',
        'bad_escape': '/v1/leads?limit=%zz',
        'nul': '/v1/leads%00x?a',
        'no_query': '/healthz',
    },
    'api_json': {
        'create': '\x00{"name":"CRM sync","scopes":["leads:read","invoices:read"],'
                  '"expires_at":"2027-06-01T00:00:00Z","rate_limit_per_minute":300}',
        'create_min': '\x00{"name":"n","scopes":["leads:read"]}',
        'create_bad_scope': '\x00{"name":"x","scopes":["leads:write"]}',
        'create_types': '\x00{"name":123,"scopes":"leads:read","expires_at":5,'
                        '"rate_limit_per_minute":1.5}',
        'create_unicode': '\x00{"name":"Caf\\u00e9 \\ud83d\\ude00 \\u0000","scopes":["leads:read"],'
                          '"expires_at":null,"rate_limit_per_minute":18446744073709551615}',
        'create_unknown': '\x00{"nmae":"typo"}',
        'rotate_grace': '\x01{"expire_old_in_seconds":3600}',
        'rotate_empty': '\x01',
        'rotate_bad': '\x01{"expire_old_in_seconds":-1}',
        'session_wrong': '\x02{"email":"ceo@example.com","password":"wrong"}',
        'session_array': '\x02[1,2,3]',
        'revoke': '\x03{}',
        'revoke_param': '\x03{"reason":"x"}',
        'not_json': '\x00{"name":',
    },
    'import_row': {
        'leads_jsonl': '\x00{"name":"Ada","email":"ada@example.com","status":"qualified",'
                       '"value_cents":125000,"currency":"EUR","created_at":"2026-01-02T03:04:05Z"}\n'
                       '{"id":"' + LEAD_ID + '","object":"lead","name":"Grace"}\n\n',
        'invoices_jsonl': '\x01{"number":"INV-7","customer_name":"Ada","lead_id":"' + LEAD_ID + '",'
                          '"status":"open","line_items":[{"description":"Widget","quantity":3,'
                          '"unit_price_cents":250,"amount_cents":750}],"subtotal_cents":750,'
                          '"tax_cents":150,"total_cents":900,"due_at":"2026-12-01T00:00:00Z"}\r\n',
        'leads_csv': '\x02\ufeffname,email,status,value_cents,company\r\n'
                     'Ada,ada@example.com,new,100,"Acme, Inc."\r\n'
                     '"Grace ""Amazing"" Hopper",grace@example.com,won,,"multi\nline"\r\n',
        'invoices_csv': '\x03number,customer_name,line_items,total_cents\n'
                        'INV-1,Ada,"[{""description"":""x"",""quantity"":2,""unit_price_cents"":5}]",10\n',
        'conflict_csv': '\x02id,name\n' + OTHER_LEAD_ID + ',Stolen\n',
        'string_numbers': '\x00{"name":"Ada","value_cents":"125000","currency":"USD"}\n',
        'bad_row': '\x00{"name":"x","status":"maybe"}\n',
        'unterminated': '\x02name\n"open\n',
    },
    'http_request': {
        'v1_leads': req('GET', '/v1/leads?limit=2&status=new', auth=True),
        'v1_lead': req('GET', f'/v1/leads/{LEAD_ID}', auth=True),
        'v1_invoices': req('GET', f'/v1/invoices?cursor={cursor(1799999999, INVOICE_ID)}', auth=True),
        'v1_invoice': req('GET', f'/v1/invoices/{INVOICE_ID}', auth=True),
        'v1_key': req('GET', '/v1/key', auth=True),
        'v1_no_key': req('GET', '/v1/leads', ['Authorization: Bearer dvs_live_nope']),
        'v1_post': req('POST', '/v1/leads', auth=True, body='{}'),
        'healthz': req('GET', '/healthz'),
        'readyz': 'GET /readyz HTTP/1.0\r\n\r\n',
        'portal': req('GET', '/'),
        'asset': req('HEAD', '/assets/app.js'),
        'api_session': req('GET', '/api/session', cookie=True),
        'api_sign_in': req('POST', '/api/session', body='{"email":"ceo@example.com","password":"pw"}'),
        'api_sign_out': req('DELETE', '/api/session', cookie=True, body=''),
        'api_keys': req('GET', '/api/keys', cookie=True),
        'api_create': req('POST', '/api/keys', cookie=True,
                          body='{"name":"CRM","scopes":["leads:read"],"rate_limit_per_minute":60}'),
        'api_rotate': req('POST', f'/api/keys/{ROTATE_ID}/rotate', cookie=True,
                          body='{"expire_old_in_seconds":86400}'),
        'api_revoke': req('POST', f'/api/keys/{REVOKE_ID}/revoke', cookie=True, body='{}'),
        'api_requests': req('GET', f'/api/keys/{ROTATE_ID}/requests?limit=5', cookie=True),
        'api_usage': req('GET', f'/api/keys/{REVOKE_ID}/usage', cookie=True),
        'api_audit': req('GET', '/api/audit-events?limit=3', cookie=True),
        'api_wrong_type': req('POST', '/api/keys', ['Content-Type: text/plain',
                                                    'Content-Length: 2'], cookie=True) + '{}',
        'api_cross_origin': req('POST', '/api/keys', ['Origin: https://evil.example'],
                                cookie=True, body='{}'),
        'chunked': 'POST /api/keys HTTP/1.1\r\nHost: ' + HOST + '\r\nCookie: dvs_session=' + SESSION +
                   '\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
                   '5\r\n{"nam\r\n13\r\ne":"x","scopes":[]}\r\n0\r\n\r\n',
        'not_found': req('GET', '/nope/dvs_live_secretsecret'),
    },
}

for harness, seeds in SEEDS.items():
    d = os.path.join(HERE, 'corpus', harness)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data.encode('utf-8'))
print('seeds written to', os.path.join(HERE, 'corpus'))
