'use strict';
// An SMSC built on node-smpp, a third-party peer for the gateway's upstream client.
//
//   node smsc.js
//
// Listens on a free loopback port and prints one JSON object per line on
// stdout: first {"event":"listening","port":N}, then what it receives. It
// accepts binds of system_id "smsgw" with password "secret" in every mode
// (transceiver, transmitter, receiver), and sends one MO right after each
// transceiver bind. It answers every submit_sm with a hex message ID, except
// to destinations starting 6140000, which it refuses with ESME_RINVDSTADR.
// When a receipt is requested it sends it as a deliver_sm (text form plus
// receipted_message_id and message_state) on a session of the same
// system_id that can receive: the submitting one if it can, else a receiver.
// A receipt refused with a non-zero deliver_sm_resp is sent again, up to
// three times.
const smpp = require('smpp');

const log = (event, fields) => process.stdout.write(JSON.stringify(Object.assign({event}, fields)) + '\n');

// YYMMDDhhmm in UTC, the receipt date format.
const receiptDate = d => d.toISOString().replace(/[-T:]/g, '').slice(2, 12);

let nextID = 0xA1F00;
let nextSession = 0;
const bound = new Set(); // {session, id, mode, systemID}

function receiverFor(origin) {
  if (origin.mode !== 'transmitter') {
    return origin;
  }
  for (const b of bound) {
    if (b.systemID === origin.systemID && b.mode !== 'transmitter') {
      return b;
    }
  }
  return null;
}

function sendReceipt(origin, submit, id, submittedAt, attempt) {
  const target = receiverFor(origin);
  if (!target) {
    log('no_receiver', {message_id: id, attempt});
    if (attempt < 3) {
      setTimeout(() => sendReceipt(origin, submit, id, submittedAt, attempt + 1), 200);
    }
    return;
  }
  const text = `id:${id} sub:001 dlvrd:001 submit date:${receiptDate(submittedAt)} ` +
    `done date:${receiptDate(new Date())} stat:DELIVRD err:000 text:`;
  target.session.deliver_sm({
    source_addr: submit.destination_addr,
    destination_addr: submit.source_addr,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
    data_coding: 0,
    short_message: text,
    receipted_message_id: id,
    message_state: smpp.MESSAGE_STATE.DELIVERED,
  }, resp => {
    log('deliver_sm_resp', {kind: 'receipt', message_id: id, attempt, session: target.id, command_status: resp.command_status});
    if (resp.command_status !== 0 && attempt < 3) {
      setTimeout(() => sendReceipt(origin, submit, id, submittedAt, attempt + 1), 50);
    }
  });
}

const server = smpp.createServer({}, session => {
  const me = {session, id: ++nextSession, mode: '', systemID: ''};
  session.on('error', err => log('error', {message: String(err)}));
  session.on('close', () => bound.delete(me));

  const bind = mode => pdu => {
    if (pdu.system_id !== 'smsgw' || pdu.password !== 'secret') {
      log('bind_refused', {system_id: pdu.system_id, mode});
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      session.close();
      return;
    }
    me.mode = mode;
    me.systemID = pdu.system_id;
    bound.add(me);
    session.send(pdu.response({system_id: 'node-smpp'}));
    log('bound', {system_id: pdu.system_id, system_type: pdu.system_type, mode, session: me.id});
    if (mode !== 'transceiver') {
      return;
    }
    session.deliver_sm({
      source_addr: '61400000009',
      destination_addr: '12345',
      esm_class: 0,
      data_coding: 0,
      short_message: 'MO from node-smpp',
    }, resp => log('deliver_sm_resp', {kind: 'mo', command_status: resp.command_status}));
  };
  session.on('bind_transceiver', bind('transceiver'));
  session.on('bind_transmitter', bind('transmitter'));
  session.on('bind_receiver', bind('receiver'));
  session.on('enquire_link', pdu => {
    log('enquire_link', {session: me.id});
    session.send(pdu.response());
  });
  session.on('unbind', pdu => {
    log('unbind', {session: me.id, mode: me.mode});
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', pdu => {
    const sm = pdu.short_message;
    const fields = {
      session: me.id,
      mode: me.mode,
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      text: typeof sm.message === 'string' ? sm.message : String(sm.message),
    };
    if (pdu.destination_addr.startsWith('6140000')) {
      log('submit_sm', Object.assign(fields, {command_status: smpp.ESME_RINVDSTADR}));
      session.send(pdu.response({command_status: smpp.ESME_RINVDSTADR}));
      return;
    }
    const id = (nextID++).toString(16).toUpperCase().padStart(10, '0');
    log('submit_sm', Object.assign(fields, {message_id: id, command_status: 0}));
    session.send(pdu.response({message_id: id}));
    if (pdu.registered_delivery & 0x03) {
      const submittedAt = new Date();
      setTimeout(() => sendReceipt(me, pdu, id, submittedAt, 1), 20);
    }
  });
});

server.listen(0, '127.0.0.1', () => log('listening', {port: server.address().port}));
