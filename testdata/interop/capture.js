'use strict';
// Captures the exact bytes masterless@0.4.1 puts on the wire, for
// spec/LEGACY-0.4.1.md. Usage: node capture.js SCENARIO (see the table at the
// bottom). Every TCP read is printed as
//   +MS CONN DIR "bytes as a JSON string"
// where CONN numbers the connections through a logging proxy (or a raw
// client) and DIR says who wrote the bytes. Only 127.0.0.1 is used.
//
// Every server sends each peer an application packet as soon as it connects:
// masterless 0.4.1 crashes at its first heartbeat tick otherwise
// (process.hrtime([]) throws on current Node.js; see LEGACY-0.4.1.md).
var net = require('net');
var Server = require('./lib');

var t0 = Date.now();
function log() {
  var args = Array.prototype.slice.call(arguments);
  console.log(['+' + (Date.now() - t0) + 'ms'].concat(args).join(' '));
}
function q(buf) { return JSON.stringify(buf.toString('latin1')); }

// proxy listens on 127.0.0.1 and forwards every connection to target port,
// logging both directions under a connection number.
var nconn = 0;
function proxy(name, targetPort, cb) {
  var srv = net.createServer(function(client) {
    var id = 'c' + (++nconn);
    var up = net.connect(targetPort, '127.0.0.1');
    log(id, 'open', 'dialer->' + name);
    client.on('data', function(d) { log(id, 'dialer->' + name, q(d)); up.write(d); });
    up.on('data', function(d) { log(id, name + '->dialer', q(d)); client.write(d); });
    client.on('end', function() { log(id, 'dialer->' + name, 'FIN'); up.end(); });
    up.on('end', function() { log(id, name + '->dialer', 'FIN'); client.end(); });
    client.on('error', function(e) { log(id, 'dialer error', e.code); up.destroy(); });
    up.on('error', function(e) { log(id, name + ' error', e.code); client.destroy(); });
  });
  srv.listen(0, '127.0.0.1', function() { cb('tcp://127.0.0.1:' + srv.address().port); });
  return srv;
}

function server(id) {
  var s = new Server(id, {host: '127.0.0.1'});
  s.on('connect', function(peer, info) {
    log(id, 'event connect', peer, info);
    s.send(peer, {from: id, n: 0}); // hrtime workaround, and a data sample
  });
  s.on('disconnect', function(peer) { log(id, 'event disconnect', peer); });
  s.on('message', function(peer, data) { log(id, 'event message', peer, JSON.stringify(data)); });
  return s;
}

function listening(servers, cb) {
  var left = servers.length;
  servers.forEach(function(s) { s.once('listening', function() { --left || cb(); }); });
}

function rawClient(port, name) {
  var id = 'c' + (++nconn);
  var c = net.connect(port, '127.0.0.1');
  c.on('data', function(d) { log(id, 'server->' + name, q(d)); });
  c.on('end', function() { log(id, 'server->' + name, 'FIN'); });
  c.on('error', function(e) { log(id, 'error', e.code); });
  c.say = function(s) { log(id, name + '->server', q(Buffer.from(s))); c.write(s); };
  return c;
}

function finish(ms, servers) {
  setTimeout(function() {
    servers.forEach(function(s) { s.close(); });
    setTimeout(function() { process.exit(0); }, 100);
  }, ms);
}

var scenarios = {
  // A dials B once; both keep; data both ways; idle until heartbeats; A
  // disconnects.
  single: function() {
    var a = server('aaa'), b = server('bbb');
    listening([a, b], function() {
      log('A', a.info(), 'B', b.info());
      proxy('B', +b.info().split(':')[2], function(pb) {
        a.connect(pb);
        a.keep('bbb');
        setTimeout(function() { log('A keep(bbb,false)'); a.keep('bbb', false); }, 2500);
        setTimeout(function() { log('A disconnect(bbb)'); a.disconnect('bbb'); }, 2700);
        finish(3200, [a, b]);
      });
    });
  },
  // Both dial each other in the same tick (times N, default 1), both keep.
  simultaneous: function() {
    var n = +(process.argv[3] || 1);
    var a = server('aaa'), b = server('bbb');
    listening([a, b], function() {
      log('A', a.info(), 'B', b.info());
      proxy('B', +b.info().split(':')[2], function(pb) {
        proxy('A', +a.info().split(':')[2], function(pa) {
          for (var i = 0; i < n; i++) {
            a.connect(pb);
            b.connect(pa);
          }
          a.keep('bbb');
          b.keep('aaa');
          setTimeout(function() {
            log('A connections', JSON.stringify(a.connections()), 'B connections', JSON.stringify(b.connections()));
            a.send('bbb', {from: 'aaa', n: 1});
            b.send('aaa', {from: 'bbb', n: 1});
          }, 300);
          finish(600, [a, b]);
        });
      });
    });
  },
  // Neither keeps: the connection is discarded right after the handshake.
  nokeep: function() {
    var a = server('aaa'), b = server('bbb');
    listening([a, b], function() {
      proxy('B', +b.info().split(':')[2], function(pb) {
        a.connect(pb);
        finish(500, [a, b]);
      });
    });
  },
  // A raw client plays the dialer against B by hand; a second raw client
  // then dials B as the same id while the first is connected, and a third
  // sends priority 0 as a fresh id.
  raw: function() {
    var b = server('bbb');
    b.on('listening', function() {
      var port = +b.info().split(':')[2];
      var c1 = rawClient(port, 'zzz');
      c1.say('{"id":"zzz","info":"tcp://127.0.0.1:1"}\r\n');
      setTimeout(function() { c1.say('{"priority":1}\r\n'); }, 100);
      setTimeout(function() {
        var c2 = rawClient(port, 'zzz#2');
        c2.say('{"id":"zzz","info":"tcp://127.0.0.1:1"}\r\n');
      }, 200);
      setTimeout(function() { c1.say('{"hi":1}\r\n[true]\r\n'); }, 300);
      setTimeout(function() {
        var c3 = rawClient(port, 'yyy');
        c3.say('{"id":"yyy","info":"tcp://127.0.0.1:1"}\r\n');
        setTimeout(function() { c3.say('{"priority":0}\r\n'); c3.end(); log('yyy sent FIN'); }, 50);
      }, 400);
      setTimeout(function() { c1.say('[false]\r\n'); }, 1800);
      finish(2000, [b]);
    });
  },
  // A raw client completes the handshake and never gets an application
  // packet from B, whose script does not send: B crashes at its next tick.
  crash: function() {
    var b = new Server('bbb', {host: '127.0.0.1'});
    b.on('connect', function(peer) { log('bbb event connect', peer, '(not sending)'); });
    process.on('exit', function(code) { log('exit', code); });
    b.on('listening', function() {
      var c1 = rawClient(+b.info().split(':')[2], 'zzz');
      c1.say('{"id":"zzz","info":"tcp://127.0.0.1:1"}\r\n');
      setTimeout(function() { c1.say('{"priority":1}\r\n'); }, 50);
    });
  },
  // Only the first handshake line arrives: the node entry it creates has
  // never been sent to, so the next heartbeat tick crashes the process.
  hellocrash: function() {
    var b = server('bbb');
    process.on('exit', function(code) { log('exit', code); });
    b.on('listening', function() {
      var c1 = rawClient(+b.info().split(':')[2], 'zzz');
      c1.say('{"id":"zzz","info":"tcp://127.0.0.1:1"}\r\n');
    });
  },
  // After the handshake the peer sends the JSON value null, which the
  // chunker pushes as end-of-stream.
  nullpacket: function() {
    var b = server('bbb');
    b.on('listening', function() {
      var c1 = rawClient(+b.info().split(':')[2], 'zzz');
      c1.say('{"id":"zzz","info":"tcp://127.0.0.1:1"}\r\n');
      setTimeout(function() { c1.say('{"priority":1}\r\n'); }, 50);
      setTimeout(function() { c1.say('null\r\n'); }, 100);
      setTimeout(function() { c1.say('{"after":"null"}\r\n'); }, 150);
      finish(400, [b]);
    });
  },
  // The first line is JSON without a truthy id: 0.4.1 reads node.id of null.
  badfirst: function() {
    var b = server('bbb');
    process.on('exit', function(code) { log('exit', code); });
    b.on('listening', function() {
      var c1 = rawClient(+b.info().split(':')[2], 'raw');
      c1.say('{}\r\n');
      finish(500, [b]);
    });
  },
  // Not JSON at all (a v1 preamble and HELLO, which contains no CRLF until
  // we add one): a parse error closes the connection.
  v1: function() {
    var b = server('bbb');
    b.on('listening', function() {
      var c1 = rawClient(+b.info().split(':')[2], 'v1');
      c1.write(Buffer.from('4d4c5353000100000000001001036161610000000000000001000000', 'hex'));
      log('v1 sent preamble+HELLO, no CRLF');
      setTimeout(function() { c1.say('\r\n'); }, 300);
      finish(600, [b]);
    });
  },
  // B dials a raw acceptor that answers the handshake, gets B's data packet,
  // then stays silent: does B's outgoing connection time out?
  silent: function() {
    var b = server('bbb');
    var acc = net.createServer(function(c) {
      c.on('data', function(d) {
        log('acceptor got', q(d));
        var s = d.toString();
        if (s.indexOf('"id"') >= 0) c.write('{"id":"zzz"}\r\n');
        if (s.indexOf('"priority"') >= 0) c.write('{"confirm":true}\r\n[true]\r\n');
      });
      c.on('end', function() { log('acceptor got FIN'); });
      c.on('error', function(e) { log('acceptor error', e.code); });
    });
    acc.listen(0, '127.0.0.1');
    listening([b, acc], function() {
      b.connect('tcp://127.0.0.1:' + acc.address().port);
      b.keep('zzz');
    });
    finish(+(process.argv[3] || 8000), [b]);
  },
  // B dials a raw acceptor that never answers: the 5 s outgoing timeout.
  mute: function() {
    var b = server('bbb');
    var acc = net.createServer(function(c) {
      c.on('data', function(d) { log('acceptor got', q(d)); });
      c.on('end', function() { log('acceptor got FIN'); });
      c.on('error', function(e) { log('acceptor error', e.code); });
    });
    acc.listen(0, '127.0.0.1');
    listening([b, acc], function() {
      b.connect('tcp://127.0.0.1:' + acc.address().port, function(err, id) {
        log('connect callback', err && err.message, id);
      });
    });
    finish(6500, [b]);
  }
};

var name = process.argv[2];
if (!scenarios[name]) {
  console.error('usage: node capture.js ' + Object.keys(scenarios).join('|') + ' [arg]');
  process.exit(2);
}
scenarios[name]();
