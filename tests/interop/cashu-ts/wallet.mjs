// cashu-ts against a Cashu mint: the e2e tests `interop_cashu_ts` run this script.
//
//   MINT_URL=http://127.0.0.1:3338 SEED_HEX=<64 bytes hex> node wallet.mjs suite <melt-invoice> [token-to-receive]
//   MINT_URL=http://127.0.0.1:3338 node wallet.mjs token <amount>
//
// `suite` mints, sends, receives, sends and receives P2PK-locked ecash, verifies DLEQ proofs,
// checks proof states, melts to <melt-invoice>, receives [token-to-receive] (made by another
// wallet) and restores its proofs from the seed (NUT-09/13). `token` mints <amount> and prints it
// as one token. Every step prints one JSON line {"step": ..., ...}; a failure prints
// {"step": "error", ...} and exits 1. Amounts are plain numbers.

import {
  CheckStateEnum,
  MintQuoteState,
  Wallet,
  createRandomSecretKey,
  getEncodedToken,
  getPubKeyFromPrivKey,
  hasValidDleq,
  sumProofs,
} from '@cashu/cashu-ts';

const DEADLINE_MS = 30_000;
const MINT_AMOUNT = 1000;

const mintUrl = process.env.MINT_URL;
if (!mintUrl) fail('MINT_URL is not set');

function emit(step, fields = {}) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function fail(message) {
  emit('error', { message });
  process.exit(1);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const total = (proofs) => sumProofs(proofs).toNumber();
const hex = (bytes) => Buffer.from(bytes).toString('hex');

async function newWallet(seed) {
  const wallet = new Wallet(mintUrl, seed ? { unit: 'sat', bip39seed: seed } : { unit: 'sat' });
  await wallet.loadMint();
  return wallet;
}

/** Asks for a bolt11 mint quote, waits until the (fake) backend has paid it, mints. */
async function mintProofs(wallet, amount) {
  const quote = await wallet.createMintQuoteBolt11(amount);
  const start = Date.now();
  for (;;) {
    const checked = await wallet.checkMintQuoteBolt11(quote.quote);
    if (checked.state === MintQuoteState.PAID) break;
    if (Date.now() - start > DEADLINE_MS) throw new Error(`quote ${quote.quote} was never paid`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const proofs = await wallet.mintProofsBolt11(amount, quote.quote);
  return { quote: quote.quote, proofs };
}

/** Every proof carries a DLEQ proof (NUT-12) that verifies against the mint's key. */
function dleqValid(wallet, proofs) {
  return proofs.every((p) => p.dleq && hasValidDleq(p, wallet.keyChain.getKeyset(p.id)));
}

async function states(wallet, proofs) {
  const result = await wallet.checkProofsStates(proofs);
  return result.map((s) => s.state);
}

async function suite(meltInvoice, foreignToken) {
  const seedHex = process.env.SEED_HEX;
  check(seedHex && seedHex.length === 128, 'SEED_HEX must be 64 bytes of hex');
  const seed = Uint8Array.from(Buffer.from(seedHex, 'hex'));
  const alice = await newWallet(seed);
  const bob = await newWallet();

  // Mint: deterministic secrets from the seed (NUT-13), so they can be restored below.
  const minted = await mintProofs(alice, MINT_AMOUNT);
  let proofs = minted.proofs;
  check(total(proofs) === MINT_AMOUNT, `minted ${total(proofs)}`);
  emit('mint', { quote: minted.quote, amount: total(proofs), proofs: proofs.length });

  // DLEQ: the mint's blind signatures come with DLEQ proofs that verify (NUT-12).
  check(dleqValid(alice, proofs), 'minted proofs carry valid DLEQ proofs');
  emit('dleq', { verified: proofs.length, valid: true });

  // Send 100 to bob; bob receives (the mint swaps the token's proofs for new ones).
  const sent = await alice.send(100, proofs);
  proofs = sent.keep;
  const token = getEncodedToken({ mint: mintUrl, proofs: sent.send });
  check(total(sent.send) === 100, `sent ${total(sent.send)}`);
  emit('send', { amount: total(sent.send), balance: total(proofs), token });
  // The receiver checks DLEQ on the token before it swaps (an offline-verifiable token).
  const bobProofs = await bob.ops.receive(token).requireDleq(true).run();
  check(total(bobProofs) === 100, `received ${total(bobProofs)}`);
  emit('receive', { amount: total(bobProofs), dleq_required: true });

  // Checkstate: the token's proofs are spent now, alice's change is not (NUT-07).
  const sentStates = await states(alice, sent.send);
  const keptStates = await states(alice, proofs);
  check(sentStates.every((s) => s === CheckStateEnum.SPENT), `sent proofs: ${sentStates}`);
  check(keptStates.every((s) => s === CheckStateEnum.UNSPENT), `kept proofs: ${keptStates}`);
  emit('checkstate', { spent: sentStates.length, unspent: keptStates.length });

  // P2PK: alice locks 50 to bob's key (NUT-11); a wallet without the key cannot redeem it,
  // bob with the key can.
  const bobKey = createRandomSecretKey();
  const bobPub = hex(getPubKeyFromPrivKey(bobKey));
  const locked = await alice.ops.send(50, proofs).asP2PK({ pubkey: bobPub }).run();
  proofs = locked.keep;
  const lockedToken = getEncodedToken({ mint: mintUrl, proofs: locked.send });
  check(
    locked.send.every((p) => JSON.parse(p.secret)[0] === 'P2PK'),
    'locked proofs have P2PK secrets',
  );
  emit('p2pk_send', { amount: total(locked.send), pubkey: bobPub, token: lockedToken });
  const eve = await newWallet();
  let refused = '';
  try {
    await eve.receive(lockedToken);
  } catch (e) {
    refused = String(e?.message ?? e);
  }
  check(refused !== '', 'a wallet without the key redeemed a locked token');
  const unlocked = await bob.receive(lockedToken, { privkey: hex(bobKey) });
  check(total(unlocked) === 50, `unlocked ${total(unlocked)}`);
  emit('p2pk_receive', { amount: total(unlocked), refused_without_key: refused });

  // Melt: pay the invoice; the rest of the fee reserve comes back as change (NUT-05, NUT-08).
  const meltQuote = await alice.createMeltQuoteBolt11(meltInvoice);
  const needed = meltQuote.amount.add(meltQuote.fee_reserve);
  const forMelt = await alice.send(needed, proofs, { includeFees: true });
  const melted = await alice.meltProofsBolt11(meltQuote, forMelt.send);
  check(melted.quote.state === 'PAID', `melt quote state ${melted.quote.state}`);
  proofs = [...forMelt.keep, ...(melted.change ?? [])];
  emit('melt', {
    quote: meltQuote.quote,
    amount: meltQuote.amount.toNumber(),
    fee_reserve: meltQuote.fee_reserve.toNumber(),
    change: total(melted.change ?? []),
    state: melted.quote.state,
    balance: total(proofs),
  });

  // A token another wallet made (a cdk wallet, in the test) received with the seed.
  if (foreignToken) {
    const received = await alice.receive(foreignToken);
    proofs = [...proofs, ...received];
    emit('receive_foreign', { amount: total(received), balance: total(proofs) });
  }

  // Restore: a fresh wallet with only the seed finds alice's unspent proofs (NUT-09, NUT-13).
  const restorer = await newWallet(seed);
  const restored = await restorer.batchRestore(20, 50);
  const restoredStates = await states(restorer, restored.proofs);
  const unspent = restored.proofs.filter((_, i) => restoredStates[i] === CheckStateEnum.UNSPENT);
  check(
    total(unspent) === total(proofs),
    `restored ${total(unspent)} unspent, the wallet holds ${total(proofs)}`,
  );
  emit('restore', {
    restored: restored.proofs.length,
    unspent_amount: total(unspent),
    balance: total(proofs),
    last_counter: restored.lastCounterWithSignature ?? null,
  });
  emit('done', { balance: total(proofs), bob_balance: total(bobProofs) + total(unlocked) });
}

async function token(amount) {
  check(Number.isInteger(amount) && amount > 0, 'amount must be a positive integer');
  const wallet = await newWallet();
  const minted = await mintProofs(wallet, amount);
  const { send } = await wallet.send(amount, minted.proofs);
  check(total(send) === amount, `token holds ${total(send)}`);
  emit('token', { amount, token: getEncodedToken({ mint: mintUrl, proofs: send }) });
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === 'suite' && args.length >= 1) await suite(args[0], args[1]);
  else if (command === 'token' && args.length === 1) await token(Number(args[0]));
  else fail('usage: wallet.mjs suite <melt-invoice> [token] | wallet.mjs token <amount>');
} catch (e) {
  fail(String(e?.stack ?? e));
}
