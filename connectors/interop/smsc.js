'use strict';
// An SMSC built on node-smpp, a third-party peer for the gateway's upstream client.
//
//   node smsc.js
//
// Listens on a free loopback port and prints one JSON object per line on
// stdout: first {"event":"listening","port":N}, then what it receives. It
// accepts the transceiver bind "smsgw"/"secret", sends one MO right after the
// bind, answers every submit_sm with a hex message ID and, when a receipt is
// requested, sends it as a deliver_sm (text form plus receipted_message_id and
// message_state). A receipt refused with a non-zero deliver_sm_resp is sent
// again, up to three times.
const smpp = require('smpp');

const log = (event, fields) => process.stdout.write(JSON.stringify(Object.assign({event}, fields)) + '\n');

// YYMMDDhhmm in UTC, the receipt date format.
const receiptDate = d => d.toISOString().replace(/[-T:]/g, '').slice(2, 12);

let nextID = 0xA1F00;

function sendReceipt(session, submit, id, submittedAt, attempt) {
  const text = `id:${id} sub:001 dlvrd:001 submit date:${receiptDate(submittedAt)} ` +
    `done date:${receiptDate(new Date())} stat:DELIVRD err:000 text:`;
  session.deliver_sm({
    source_addr: submit.destination_addr,
    destination_addr: submit.source_addr,
    esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
    data_coding: 0,
    short_message: text,
    receipted_message_id: id,
    message_state: smpp.MESSAGE_STATE.DELIVERED,
  }, resp => {
    log('deliver_sm_resp', {kind: 'receipt', message_id: id, attempt, command_status: resp.command_status});
    if (resp.command_status !== 0 && attempt < 3) {
      setTimeout(() => sendReceipt(session, submit, id, submittedAt, attempt + 1), 50);
    }
  });
}

const server = smpp.createServer({}, session => {
  session.on('error', err => log('error', {message: String(err)}));
  session.on('bind_transceiver', pdu => {
    if (pdu.system_id !== 'smsgw' || pdu.password !== 'secret') {
      log('bind_refused', {system_id: pdu.system_id});
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      session.close();
      return;
    }
    session.send(pdu.response({system_id: 'node-smpp'}));
    log('bound', {system_id: pdu.system_id});
    session.deliver_sm({
      source_addr: '61400000009',
      destination_addr: '12345',
      esm_class: 0,
      data_coding: 0,
      short_message: 'MO from node-smpp',
    }, resp => log('deliver_sm_resp', {kind: 'mo', command_status: resp.command_status}));
  });
  session.on('enquire_link', pdu => session.send(pdu.response()));
  session.on('unbind', pdu => {
    log('unbind', {});
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', pdu => {
    const id = (nextID++).toString(16).toUpperCase().padStart(10, '0');
    const sm = pdu.short_message;
    log('submit_sm', {
      source_addr: pdu.source_addr,
      destination_addr: pdu.destination_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      text: typeof sm.message === 'string' ? sm.message : String(sm.message),
      message_id: id,
    });
    session.send(pdu.response({message_id: id}));
    if (pdu.registered_delivery & 0x03) {
      const submittedAt = new Date();
      setTimeout(() => sendReceipt(session, pdu, id, submittedAt, 1), 20);
    }
  });
});

server.listen(0, '127.0.0.1', () => log('listening', {port: server.address().port}));
