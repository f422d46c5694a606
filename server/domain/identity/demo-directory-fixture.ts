/**
 * The people and groups of the demo directory (DEMO=1 without `active_directory`): a small company, enough for the
 * README's walk-through — requesters with managers (approval routing), the consumer attributes orders snapshot
 * (department, cost center, company, employee id, title), the group the Standard VDI runbooks add to and remove from
 * (`VDI-Users`), nesting (`VDI-Users` inside `Remote-Access`, `Engineering` inside `All-Staff`), and one disabled
 * account (a leaver, refused as a requester). sAMAccountName is the email's local part, as runbooks derive
 * `{{order.username}}` from `order.user_email`.
 */

export interface DemoPerson {
  sAMAccountName: string;
  displayName: string;
  mail: string;
  /** The manager's sAMAccountName. */
  manager?: string;
  enabled: boolean;
  department: string;
  cost_center: string;
  company: string;
  employee_id: string;
  title: string;
}

export interface DemoGroup {
  sAMAccountName: string;
  /** Members: people and groups, by sAMAccountName. */
  members: string[];
}

export const DEMO_DIRECTORY_BASE_DN = 'DC=example,DC=com';
export const DEMO_USERS_OU = `OU=Users,OU=Demo,${DEMO_DIRECTORY_BASE_DN}`;
export const DEMO_GROUPS_OU = `OU=Groups,OU=Demo,${DEMO_DIRECTORY_BASE_DN}`;

const company = 'Example Corp';

export const DEMO_PEOPLE: readonly DemoPerson[] = [
  { sAMAccountName: 'sam.ceo', displayName: 'Sam Ceo', mail: 'sam.ceo@example.com', enabled: true, department: 'Management', cost_center: 'CC-MGT-001', company, employee_id: 'E0001', title: 'Chief Executive Officer' },
  { sAMAccountName: 'boss', displayName: 'Morgan Boss', mail: 'boss@example.com', manager: 'sam.ceo', enabled: true, department: 'Engineering', cost_center: 'CC-ENG-100', company, employee_id: 'E0010', title: 'Head of Engineering' },
  { sAMAccountName: 'jane.doe', displayName: 'Jane Doe', mail: 'jane.doe@example.com', manager: 'boss', enabled: true, department: 'Engineering', cost_center: 'CC-ENG-100', company, employee_id: 'E1001', title: 'Software Engineer' },
  { sAMAccountName: 'john.smith', displayName: 'John Smith', mail: 'john.smith@example.com', manager: 'boss', enabled: true, department: 'Engineering', cost_center: 'CC-ENG-110', company, employee_id: 'E1002', title: 'Site Reliability Engineer' },
  { sAMAccountName: 'fiona.finance', displayName: 'Fiona Finance', mail: 'fiona.finance@example.com', manager: 'sam.ceo', enabled: true, department: 'Finance', cost_center: 'CC-FIN-200', company, employee_id: 'E0020', title: 'Finance Director' },
  { sAMAccountName: 'alex.analyst', displayName: 'Alex Analyst', mail: 'alex.analyst@example.com', manager: 'fiona.finance', enabled: true, department: 'Finance', cost_center: 'CC-FIN-210', company, employee_id: 'E2001', title: 'Financial Analyst' },
  { sAMAccountName: 'lee.leaver', displayName: 'Lee Leaver', mail: 'lee.leaver@example.com', manager: 'boss', enabled: false, department: 'Engineering', cost_center: 'CC-ENG-100', company, employee_id: 'E1003', title: 'Former Engineer' },
];

export const DEMO_GROUPS: readonly DemoGroup[] = [
  { sAMAccountName: 'All-Staff', members: ['Engineering', 'Finance', 'sam.ceo'] },
  { sAMAccountName: 'Engineering', members: ['boss', 'jane.doe', 'john.smith', 'lee.leaver'] },
  { sAMAccountName: 'Finance', members: ['fiona.finance', 'alex.analyst'] },
  { sAMAccountName: 'Managers', members: ['sam.ceo', 'boss', 'fiona.finance'] },
  // The Standard VDI runbooks' default `rdpGroup`: empty until a desktop is provisioned.
  { sAMAccountName: 'VDI-Users', members: [] },
  { sAMAccountName: 'Remote-Access', members: ['VDI-Users'] },
];
