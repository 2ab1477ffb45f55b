'use strict';
// Loads the real masterless@0.4.1 that interop/install.sh put in interop/.node.
// MASTERLESS_041 may name another copy of the package's folder.
var path = require('path');

var dir = process.env.MASTERLESS_041 ||
  path.join(__dirname, '..', '..', 'interop', '.node', 'node_modules', 'masterless');

module.exports = require(dir);
